def good(a):
    return a + 1


def broken(a:
    return a +


def also_good(b):
    return b * 2
