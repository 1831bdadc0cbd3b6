"""What the platform itself runs on, shared by every service and location: nothing here imports
Dagster at module level, so healthchecks and host-side tools stay fast."""
