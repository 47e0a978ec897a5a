// Heimdall web UI
