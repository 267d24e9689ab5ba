"""dlrepro: reproduce the classic experiments of introductory deep-learning courses."""

__version__ = "0.1.0"
