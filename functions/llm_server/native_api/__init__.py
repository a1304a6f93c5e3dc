"""The native API (`/api/v1/chat`, sessions): schemas and routes, translated to and from turns."""
