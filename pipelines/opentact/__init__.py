"""The Opentact API client: the API's shape (api), page validation (records), slicing (slices), reading (client)."""
