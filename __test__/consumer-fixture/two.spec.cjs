require('./scenario.cjs')('two')
