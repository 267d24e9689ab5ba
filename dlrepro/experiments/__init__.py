"""The experiments a suite can name: one package each, keeping the contract of
``dlrepro.experiment`` (``_template`` is a commented one to copy); ``image_sets`` is the parameter
base those on MNIST-like sets share."""
