"""The launcher: what runs for each kernel (start, supervisor, start_guard, relay, splicer), warm
containers, image resolution, the sweep (reaper), the trial start, and the hidden subcommands
(internal)."""
