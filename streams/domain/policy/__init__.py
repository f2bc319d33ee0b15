"""Region-year policies: what they say (``spec``) and what they decide for a person's year (``decide``)."""
