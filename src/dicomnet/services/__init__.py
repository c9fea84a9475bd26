"""dicomnet.services."""
