"""The five tutorials' ready configs (and, in ``fast/``, quicker versions of them), which
travel inside the package as ``gd_lightning.configs``: ``gd-lightning fit --config
line_fit`` runs one by name from any folder, and ``gd-lightning tutorials`` lists them."""
