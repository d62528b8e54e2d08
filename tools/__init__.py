"""Developer tools: template helpers and the Docker-free local stack."""
