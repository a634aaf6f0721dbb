"""Model adapters: FastSAM mask generator and closed-set semantic segmenters."""
