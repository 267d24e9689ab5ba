"""The experiments a suite can name: one package each, keeping the contract of
``dlrepro.experiment`` (``_template`` is a commented one to copy); ``image_sets`` is what those on
image sets share: the sets' files, checked, and their parameters."""
