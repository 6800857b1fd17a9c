"""Pure functions over JSON documents: merge patch, JSON patch, strategic merge patch, server-side
apply and the field sets it tracks."""
