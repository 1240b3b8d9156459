"""HTTP controllers: thin layers that parse a request, call the service logic and return its result."""
