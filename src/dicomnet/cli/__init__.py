"""dicomnet.cli."""
