"""Shopper push adapters: a log line in-process (the default), or a push gateway's webhook."""
