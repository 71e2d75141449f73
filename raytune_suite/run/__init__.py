"""One sweep end to end: its folder, Ray's Tuner, growth, concurrency, the console, stops, the workarounds of
Ray in one place (ray_compat), and the storage its folder lives in."""
