"""``python -m service.dlq …``: the DLQ tools without the ``callbridge`` entry point."""

from service.dlq.cli import main

main()
