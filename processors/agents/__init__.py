"""The Faust worker (`coalmine worker`): the app, its transport and the agents, each wiring a
pure step of `domain` to its topics."""
