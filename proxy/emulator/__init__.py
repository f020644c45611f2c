"""An emulator of Adobe Target's edge, profile, admin and activation APIs, for running and testing
the gateway on one machine with no account. The gateway never imports it except to start it."""
