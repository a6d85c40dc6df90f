"""The messages domain of the GraphQL schema: types, loaders, queries and mutations."""
