"""BlazePose pre- and post-processing as pure functions over numpy arrays."""
