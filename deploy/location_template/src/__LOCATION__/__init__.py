"""The __LOCATION__ code location."""
