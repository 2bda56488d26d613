"""The element runtime: contexts, links, the process main loop and fused execution."""
