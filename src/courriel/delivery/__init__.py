"""Where accepted mail goes: local delivery (MDA), later sieve and quota."""
