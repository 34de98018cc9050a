"""Ports: the typing.Protocol interfaces the service layer needs, each with an in-memory twin."""
