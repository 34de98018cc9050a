"""payonce: a payment service for e-commerce where every order is paid exactly once."""

__version__ = "0.1.0"
