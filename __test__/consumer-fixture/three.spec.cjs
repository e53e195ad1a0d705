require('./scenario.cjs')('three')
