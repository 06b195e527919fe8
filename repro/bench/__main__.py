from repro.bench.suite import main

raise SystemExit(main())
