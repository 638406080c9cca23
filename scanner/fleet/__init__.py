"""keysweep audit: many repositories, incrementally, on Dask distributed (the fleet extra)."""
