"""Settings from environment variables and `.env`."""
