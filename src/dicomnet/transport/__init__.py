"""dicomnet.transport."""
