require('./scenario.cjs')('one')
