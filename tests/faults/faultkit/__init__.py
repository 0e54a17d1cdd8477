"""The fault-injection suite's parts: network namespaces and member processes (`netns`,
`cluster`, `disk`), the nemesis that breaks them (`nemesis`), the client workload that
records a history (`history`, `workload`), and the checkers that judge it
(`linearizability`, `sessions`, `final_state`)."""
