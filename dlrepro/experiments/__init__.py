"""The experiments a suite can name: one package each, keeping the contract of ``dlrepro.experiment``
(``_template`` is a commented one to copy)."""
