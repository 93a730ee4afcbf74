"""The reference client: async SDK, local encrypted key store, and command-line tools."""
