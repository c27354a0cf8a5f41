"""The local devnet and the processes it and the tests start: anvil and the deployed stack (`stack`), the DA server
process (`da_process`), a throwaway PostgreSQL cluster (`pgcluster`), free ports and anvil nodes (`processes`)."""
