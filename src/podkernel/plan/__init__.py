"""The pure launch plan: what the engine is asked to run (run_args), how install's command line
splits into Podman's sections (install_args), what Podman's options are (podman_options), and the
wrappers that run inside a container (wrappers/). Nothing here runs a process."""
