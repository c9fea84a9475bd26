"""dicomnet.archive."""
