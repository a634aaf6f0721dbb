"""Model adapters behind the protocols of :mod:`.protocols`: FastSAM mask generator, closed-set
semantic segmenters (:mod:`.closed_set`, one class per implementation), the network objects
they call (:mod:`.networks`) and the exported backends (:mod:`.backends`)."""
