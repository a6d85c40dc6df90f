"""The rooms domain of the GraphQL schema: types, loaders, queries and mutations."""
