"""A stateful local emulator of HubSpot's CRM Calls API (plus just enough contacts,
companies, deals, tickets, properties and v4 associations to associate calls).

It is callbridge's default target when no HubSpot token is configured and the peer
every test talks to. Start it with ``python -m sandbox`` or ``callbridge sandbox``;
build it in-process with :func:`sandbox.app.create_app`. See ``sandbox/README.md``
for the HubSpot behaviour it reproduces and its ``/_sandbox/`` test-control API.
"""
