"""The chaos harness: simulated shoppers, provider faults and process crashes against a running
payonce, then every promise (I1 to I9) checked against the sandbox's books and payonce's own."""
