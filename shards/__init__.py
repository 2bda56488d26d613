"""datablox shards package."""
