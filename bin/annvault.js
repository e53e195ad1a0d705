#!/usr/bin/env node
'use strict'
// The annvault command line; the commands live in lib/cli/ (compiled to dist/cli/).
require('../dist/cli/main.js').main()
