"""One typer command group per part (`devnet`, `contracts`, `records`, `da`, `demo`, `bench`, ...)."""
