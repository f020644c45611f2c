"""HTTP at the edge: connection limits, the fast path for the delivery POSTs, bodies, errors as JSON, serving."""
