"""zhucan's stream processors: the pure domain, the policies and the Faust app."""
