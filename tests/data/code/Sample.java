package demo;

import java.util.List;

public class Sample {
    private final List<String> names;

    public Sample(List<String> names) {
        this.names = names;
    }

    /** Count the names. */
    public int count() {
        return names.size();
    }
}
