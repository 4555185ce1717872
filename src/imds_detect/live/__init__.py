"""Watching the local machine itself (Linux): sockets from /proc attributed to processes."""
