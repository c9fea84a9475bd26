"""Hostile-peer suite: real server processes attacked over raw sockets (issue 7)."""
